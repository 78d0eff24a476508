# Compiler flags shared by every sluice target (library, tests, examples, gateway, bench).
# Included from the top-level CMakeLists.txt before any target is created.

set(SLUICE_WARNINGS
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wundef
    -Wpointer-arith -Wcast-align -Wwrite-strings)
foreach(flag ${SLUICE_WARNINGS})
    add_compile_options($<$<COMPILE_LANGUAGE:C>:${flag}>)
endforeach()
if(SLUICE_WERROR)
    add_compile_options($<$<COMPILE_LANGUAGE:C>:-Werror>)
endif()

# Hand-written assembly (.S, run through the C preprocessor) must not ask for an
# executable stack; the linker flag covers objects that forget the .note.GNU-stack section.
add_compile_options($<$<COMPILE_LANGUAGE:ASM>:-Wa,--noexecstack>)
add_link_options(-Wl,-z,noexecstack)

# The sources test these with `#if`, and -Wundef wants them always defined: 0 or 1.
set(SLUICE_ASAN 0)
set(SLUICE_TSAN 0)
if(SLUICE_SANITIZE STREQUAL "address")
    set(SLUICE_ASAN 1)
    set(_san -fsanitize=address,undefined -fno-omit-frame-pointer
             -fno-sanitize-recover=undefined)
elseif(SLUICE_SANITIZE STREQUAL "thread")
    set(SLUICE_TSAN 1)
    set(_san -fsanitize=thread)
elseif(NOT SLUICE_SANITIZE STREQUAL "")
    message(FATAL_ERROR "SLUICE_SANITIZE must be empty, 'address' or 'thread' (got '${SLUICE_SANITIZE}')")
endif()
if(_san)
    add_compile_options(${_san})
    add_link_options(${_san})
endif()
if(SLUICE_VALGRIND)
    set(SLUICE_VALGRIND_DEF 1)
    include(CheckIncludeFile)
    check_include_file(valgrind/valgrind.h SLUICE_HAVE_VALGRIND_H)
    if(NOT SLUICE_HAVE_VALGRIND_H)
        message(FATAL_ERROR "SLUICE_VALGRIND=ON needs <valgrind/valgrind.h> (apt-get install valgrind)")
    endif()
else()
    set(SLUICE_VALGRIND_DEF 0)
endif()
if(SLUICE_VALGRIND AND NOT SLUICE_SANITIZE STREQUAL "")
    message(FATAL_ERROR "SLUICE_VALGRIND and SLUICE_SANITIZE cannot be combined")
endif()

add_compile_definitions(
    SLUICE_ASAN=${SLUICE_ASAN}
    SLUICE_TSAN=${SLUICE_TSAN}
    SLUICE_VALGRIND=${SLUICE_VALGRIND_DEF})

message(STATUS "sluice: build type '${CMAKE_BUILD_TYPE}', sanitize '${SLUICE_SANITIZE}', "
               "valgrind ${SLUICE_VALGRIND}, werror ${SLUICE_WERROR}")
