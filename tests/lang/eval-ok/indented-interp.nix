# interpolation inside indented strings
let x = "X"; y = 2; in ''
  value: ${x}
  num: ${toString y}
''
