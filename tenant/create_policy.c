/* placeholder, replaced below */
#include "tenant.h"
int tenant_create_policy(int argc, char **argv) { (void)argc; (void)argv; return 2; }
