# if condition must be a bool
if 1 then "a" else "b"
