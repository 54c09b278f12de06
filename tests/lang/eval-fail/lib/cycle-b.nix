# helper for import-cycle: imports cycle-a.nix
import ./cycle-a.nix
