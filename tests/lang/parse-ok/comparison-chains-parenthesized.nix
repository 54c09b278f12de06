# comparisons need parens to chain
a: b: (a < b) == (b > a) && (a <= b) != (a >= b)
