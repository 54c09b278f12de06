# negative numbers in lists need parens; without parens it is subtraction
x: [ (-1) 2 (x - 1) (-x) ]
