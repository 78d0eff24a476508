# sluice_add_test_file(<source.c> [LIBS <lib>...] [TIMEOUT <seconds>] [LABELS <label>...])
#
# Builds <source.c> into one executable named after the file and registers one CTest test per
# case. Cases are the lines of the file that start with `SL_TEST(<name>)` (see test/test.h);
# test `<stem>.<name>` runs `<exe> <name>` in its own process. The file is a configure
# dependency, so adding a case re-runs CMake by itself.
#
# Timeouts: TIMEOUT (default 120 s) times SLUICE_TEST_TIMEOUT_SCALE (environment at configure
# time, else the cache variable; integer, default 1).
# SLUICE_TEST_WRAPPER (cache, a list) is put in front of every test command (valgrind).
# A case that calls TEST_SKIP() exits with 77 and is reported as skipped.

set(SLUICE_TEST_TIMEOUT_SCALE 1 CACHE STRING "Multiplier for every test timeout (integer)")
set(SLUICE_TEST_WRAPPER "" CACHE STRING "Command list run in front of every test executable")
if(DEFINED ENV{SLUICE_TEST_TIMEOUT_SCALE} AND NOT "$ENV{SLUICE_TEST_TIMEOUT_SCALE}" STREQUAL "")
    set(_sluice_timeout_scale "$ENV{SLUICE_TEST_TIMEOUT_SCALE}")
else()
    set(_sluice_timeout_scale "${SLUICE_TEST_TIMEOUT_SCALE}")
endif()
if(NOT _sluice_timeout_scale MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "SLUICE_TEST_TIMEOUT_SCALE must be a positive integer, got '${_sluice_timeout_scale}'")
endif()

function(sluice_add_test_file src)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "TIMEOUT" "LIBS;LABELS")
    if(NOT arg_TIMEOUT)
        set(arg_TIMEOUT 120)
    endif()
    if(NOT arg_LIBS)
        set(arg_LIBS sluice)
    endif()
    get_filename_component(src ${src} ABSOLUTE)
    get_filename_component(stem ${src} NAME_WE)

    add_executable(${stem} ${src})
    target_link_libraries(${stem} PRIVATE ${arg_LIBS})
    # test.h lives in the top-level test/; tests may also include the library's private headers.
    target_include_directories(${stem} PRIVATE
        ${PROJECT_SOURCE_DIR}/test ${PROJECT_SOURCE_DIR}/src)
    set_target_properties(${stem} PROPERTIES
        RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/test)

    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
    file(STRINGS ${src} lines REGEX "^SL_TEST\\([A-Za-z_][A-Za-z0-9_]*\\)")
    if(NOT lines)
        message(WARNING "${src}: no `SL_TEST(name)` case at the start of a line")
    endif()
    math(EXPR timeout "${arg_TIMEOUT} * ${_sluice_timeout_scale}")
    set(seen "")
    foreach(line ${lines})
        string(REGEX REPLACE "^SL_TEST\\(([A-Za-z_][A-Za-z0-9_]*)\\).*" "\\1" case "${line}")
        if(case IN_LIST seen)
            message(FATAL_ERROR "${src}: case '${case}' declared twice")
        endif()
        list(APPEND seen ${case})
        add_test(NAME ${stem}.${case}
                 COMMAND ${SLUICE_TEST_WRAPPER} $<TARGET_FILE:${stem}> ${case})
        set_tests_properties(${stem}.${case} PROPERTIES
            TIMEOUT ${timeout}
            SKIP_RETURN_CODE 77
            LABELS "${stem};${arg_LABELS}")
    endforeach()
endfunction()
