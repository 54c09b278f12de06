# stringLength counts bytes
[ (builtins.stringLength "") (builtins.stringLength "abc") (builtins.stringLength "a\nb") (builtins.stringLength "é") ]
