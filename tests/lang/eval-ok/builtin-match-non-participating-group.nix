# groups that do not participate are null
[ (builtins.match "(a)(b)?(c)" "ac") (builtins.match "(a)|(b)" "b") (builtins.match "(x)*y" "y") ]
