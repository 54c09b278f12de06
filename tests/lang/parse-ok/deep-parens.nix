# deeply nested parentheses
((((((((((1))))))))))
