# if condition null is not false
if null then 1 else 2
