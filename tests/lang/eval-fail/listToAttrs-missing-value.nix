# listToAttrs element without value
builtins.listToAttrs [ { name = "a"; } ]
