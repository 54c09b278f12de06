# simple lambda application
(x: x * 2) 21
