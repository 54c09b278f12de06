# a.nix imports b.nix which imports a.nix
import ./lib/cycle-a.nix
