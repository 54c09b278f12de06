# helper: imported relative to dir/default.nix
[ 1 2 3 ]
