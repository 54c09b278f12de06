# lambda without a body
x:
