/* A program outside the tree: built by test/install/run.sh against an installed libsluice
 * through pkg-config, once linked statically and once against libsluice.so. */
#include <stdio.h>
#include <sluice.h>

int main(void)
{
    const char *msg = sl_strerror(SL_ETIMEDOUT);

    if (msg == NULL || msg[0] == '\0') {
        printf("sl_strerror(SL_ETIMEDOUT) is empty\n");
        return 1;
    }
    printf("SL_ETIMEDOUT: %s\n", msg);
    printf("hello from sluice: ok\n");
    return 0;
}
