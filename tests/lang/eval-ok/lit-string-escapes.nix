# string escapes \n \t \r \\ and \"
"a\nb\tc\rd\\e\"f"
