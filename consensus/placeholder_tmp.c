/* placeholder until the module lands */
typedef int shoal_consensus_placeholder;
