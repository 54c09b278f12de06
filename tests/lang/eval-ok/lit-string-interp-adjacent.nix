# adjacent interpolations and braces in strings
let a = "x"; b = "y"; in [ "${a}${b}" "{${a}}" "}" "{" "${a}}" ]
