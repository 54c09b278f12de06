# match and split see bytes, as Nix's std::regex does: `.` is one byte of `é`, `[é]` a class of its two bytes
[
  (builtins.match "h(.)llo" "héllo")
  (builtins.match "h(..)llo" "héllo")
  (builtins.match "[é]" "é")
  (builtins.match "[é]+" "é")
  (builtins.match "é*" "éé")
  (builtins.match "(é)+" "éé")
  (builtins.match "[[:alpha:]]+" "abé")
  (builtins.match "(.*)ü(.*)" "aüb🙂")
  (builtins.split "(é)" "aébéc")
  (builtins.split "[[:space:]]" "日 本")
]
