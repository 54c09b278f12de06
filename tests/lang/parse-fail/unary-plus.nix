# there is no unary plus
+1
