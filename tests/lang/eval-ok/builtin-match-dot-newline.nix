# in match, . also matches a newline
[ (builtins.match "a.b" "a\nb") (builtins.match "a(.*)" "a\nb\nc") ]
