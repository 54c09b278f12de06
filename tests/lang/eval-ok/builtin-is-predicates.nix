# isNull isInt isFloat isBool isString isList isAttrs isFunction
let vals = [ null 1 1.5 true "s" [ ] { } (x: x) ];
    test = v: [ (isNull v) (builtins.isNull v) (builtins.isInt v) (builtins.isFloat v) (builtins.isBool v) (builtins.isString v) (builtins.isList v) (builtins.isAttrs v) (builtins.isFunction v) ];
in map test vals
