# - and / are left-associative with * / over + -
a: b: c: d: a - b - c * d / a / b + c
