# escapes right before and after interpolations, in both kinds of string
let x = "X"; in
[
  "\${x}"
  "\$${x}"
  "$${x}"
  "\\${x}"
  "\"${x}\""
  "\n${x}\t"
  "${x}\\"
  "a$"
  "$"
  "${x}$"
  ''''${x}''
  ''$${x}''
  ''''$${x}''
  ''''\${x}''
  ''a''\n${x}''\t''
  ''${x}'''''
  '''''${x}''
  ''$''
  ''a$''
]
