# a self-referential fixpoint through a let-bound function
let fix = f: let x = f x; in x; r = fix (self: { a = 1; b = self.a + 1; c = self.b * 3; }); in r
