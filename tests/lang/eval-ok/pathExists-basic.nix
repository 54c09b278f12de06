# pathExists on existing and missing paths
[ (builtins.pathExists ./lib/data.txt) (builtins.pathExists ./lib/nope.txt) (builtins.pathExists ./lib) ]
