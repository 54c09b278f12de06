# selecting attributes named like builtin constants
s: [ s.true s.null s.map s.builtins ]
