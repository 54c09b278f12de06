# lambda parameters shadow with
(x: with { x = "with"; y = "y"; }; [ x y ]) "param"
