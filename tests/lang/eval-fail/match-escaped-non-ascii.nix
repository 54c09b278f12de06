# a backslash before a multi-byte character escapes a lone byte, which Nix refuses too
builtins.match "\\é" "é"
