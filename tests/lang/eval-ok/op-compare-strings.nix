# string comparison is lexicographic by bytes
[ ("abc" < "abd") ("a" < "ab") ("B" < "a") ("" < "a") ("b" > "abc") ("x" <= "x") ]
