# attribute paths mixing identifiers, strings and dynamic parts
k: { a.b.c = 1; a."b c".${k} = 2; "${k}".x = 3; ${k + "y"}.z = 4; inherit (k) p q; }
