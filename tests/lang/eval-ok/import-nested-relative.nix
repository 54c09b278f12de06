# an imported file imports another relative to itself
import ./lib/chain.nix
