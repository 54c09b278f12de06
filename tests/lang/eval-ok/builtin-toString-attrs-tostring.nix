# toString on sets with __toString and outPath
[ (toString { __toString = self: "X${toString self.n}"; n = 3; }) (toString { outPath = "/some/path"; }) ]
