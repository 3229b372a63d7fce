/* placeholder until the module lands */
typedef int shoal_api_placeholder;
