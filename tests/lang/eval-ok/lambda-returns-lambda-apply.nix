# applying the result of an application
((x: y: x - y) 10) 3
