# helper: imported via its directory
{ value = "from default.nix"; other = import ./other.nix; }
