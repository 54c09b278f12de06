# interpolating an attrset with __toString
let o = { __toString = self: "obj(${self.name})"; name = "x"; }; in "<${o}>"
