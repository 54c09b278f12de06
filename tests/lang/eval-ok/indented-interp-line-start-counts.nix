# an interpolation at line start counts as non-space content
let x = "X"; in ''
  ${x}
    indented
''
