# builtins.getAttr of a missing attribute
builtins.getAttr "missing" { present = 1; }
