# replaceStrings, longest/first match order and no rescanning
[ (builtins.replaceStrings [ "a" "b" ] [ "b" "a" ] "aabb") (builtins.replaceStrings [ "ab" "a" ] [ "1" "2" ] "aab") (builtins.replaceStrings [ "x" ] [ "yy" ] "xox") (builtins.replaceStrings [ ] [ ] "same") ]
