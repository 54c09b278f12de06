# mutually recursive rec attributes
rec { a = b; b = a; }.a
