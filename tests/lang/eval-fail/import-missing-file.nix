# importing a file that does not exist
import ./lib/does-not-exist.nix
