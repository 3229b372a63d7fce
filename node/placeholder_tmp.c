/* placeholder until the module lands */
typedef int shoal_node_placeholder;
