# replaceStrings with an empty pattern inserts everywhere
[ (builtins.replaceStrings [ "" ] [ "-" ] "abc") (builtins.replaceStrings [ "a" "" ] [ "X" "-" ] "abc") (builtins.replaceStrings [ "" ] [ "-" ] "") ]
