# interpolated multi-line values are not re-indented
let v = "l1\nl2"; in ''
    a
    ${v}
    b
''
