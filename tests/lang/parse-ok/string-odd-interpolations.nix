# strings with braces, dollars and nested interpolation
x: [ "}" "{" "$" "$$" "$${" "\${" "${x}}" "${"${"${x}"}"}" ''${x}'' ''$${x}'' ''''''' ]
