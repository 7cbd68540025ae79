# Generates setslice.txt: Python's l[start:stop:step] = values on
# l = [0, 1, 2, 3, 4], for TestListSetSliceMatchesPython.
# Run: python3 setslice.py > setslice.txt
# Each line: start stop step nvalues -> the list after, or the exception.
# "N" is None; the values are "a", "b", "c" (the first nvalues of them).
bounds = [None, -9, -5, -2, 0, 1, 3, 5, 9]
steps = [None, 1, 2, 3, -1, -2, -3, 0]
def fmt(x):
    return "N" if x is None else str(x)
def show(l):
    return "[" + ", ".join(str(v) if isinstance(v, int) else '"%s"' % v for v in l) + "]"
for start in bounds:
    for stop in bounds:
        for step in steps:
            for n in range(4):
                l = [0, 1, 2, 3, 4]
                try:
                    l[start:stop:step] = ["a", "b", "c"][:n]
                    out = show(l)
                except ValueError as e:
                    out = "ValueError: " + str(e)
                print(fmt(start), fmt(stop), fmt(step), n, "->", out)
