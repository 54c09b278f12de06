# in nested with the inner one wins
with { a = "outer"; b = "outer-b"; }; with { a = "inner"; }; [ a b ]
