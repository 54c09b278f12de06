# match anchors the whole string and returns groups
[ (builtins.match "a" "ba") (builtins.match "[[:digit:]]+" "123") (builtins.match "(.*)\\.(.*)" "foo.bar.nix") (builtins.match "([a-z]+)-([0-9]+)" "pkg-12") (builtins.match "" "") ]
