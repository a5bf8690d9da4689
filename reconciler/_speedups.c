/* The plan core's passes over every user, in C.
 *
 * At 100,000 users the plan's time goes to a few passes over every desired user and every
 * live resource: deriving memberships, indexing the live users, pairing, and the quick
 * check of each pair. Each function here is a port of Python code that stays its
 * reference, runs where this module is not built, and is tested against it:
 *
 *   scan(users, lives, grants, ids, spec) -> list[int]
 *       reconciler.plan.quick.scan_python (scimmap.unchanged for each pair)
 *   user_groups(users, names, folded) -> (sets, members) | None
 *       reconciler.desired.state.user_groups_python
 *   index_strings(live, key, fold) -> dict | None
 *       reconciler.plan.match.index_strings_python
 *   ids_of(names, matched) -> dict | None
 *       reconciler.plan.build.ids_of_python
 *   field_values(models, name) -> list | None
 *       reconciler.plan.build.field_values_python
 *   find(index, values) -> (found, hits) | None
 *       reconciler.plan.match.find_python
 *   same_members(desired, members, ids) -> bool | None
 *       reconciler.plan.build.same_members_python
 *
 * Where a Python function answers None ("take the general path"), so does its port, and
 * the port may answer None where the reference would not (never the other way round); the
 * caller then runs the general Python code. scan may call a user "may differ" where the
 * reference calls it unchanged (the plan then compares that user fully), never the other
 * way round. So wherever a value is not of the plain shape expected (an exact dict, list
 * or str), these functions take the cautious answer rather than reason about it. Values
 * are compared with Python's own ==, as the references do.
 *
 * scan and user_groups read each block of users ahead of working on it (warm(), below):
 * at 100,000 users their time is mostly waiting for memory, and that waiting overlaps when
 * a block is read breadth-first. It changes no answer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *s_dict, *s_active, *s_name, *s_attributes, *s_manager, *s_value, *s_type,
    *s_primary, *s_user_ref, *s_entitlements, *s_roles, *s_casefold, *s_groups, *s_id;

/* A new dict with room for n entries without growing as they come (a 100,000-entry dict
 * otherwise grows fifteen times, copying its entries each time). Python 3.11 and 3.12
 * declare the function in their headers; later ones keep it internal, and there the dict
 * grows. */
static inline PyObject *
dict_for(Py_ssize_t n)
{
#if PY_VERSION_HEX < 0x030D0000 && !defined(Py_LIMITED_API)
    return _PyDict_NewPresized(n);
#else
    (void)n;
    return PyDict_New();
#endif
}

/* A set of pointers (open addressing, linear probing): which objects a pass met already,
 * without the hashing and growing of a Python set. Objects are compared by address only. */
typedef struct {
    uintptr_t *slots;
    size_t mask;
    int shift; /* 64 - log2 of the number of slots */
} Seen;

static int
seen_init(Seen *s, Py_ssize_t n)
{
    size_t size = 16;
    s->shift = 60;
    while (size < (size_t)n * 2) {
        size *= 2;
        s->shift--;
    }
    s->slots = PyMem_Calloc(size, sizeof *s->slots);
    s->mask = size - 1;
    if (s->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* 1 when p was met already, else 0 (and p is now). Holds at most the n it was made for. */
static inline int
seen_add(Seen *s, const void *p)
{
    uintptr_t key = (uintptr_t)p;
    size_t at = (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> s->shift);
    while (s->slots[at] != 0) {
        if (s->slots[at] == key) {
            return 1;
        }
        at = (at + 1) & s->mask;
    }
    s->slots[at] = key;
    return 0;
}

/* QuickSpec's fields, in its order. */
typedef struct {
    PyObject *top;         /* tuple[str]: user fields compared with the same live keys */
    PyObject *name_parts;  /* tuple[str]: name.* sub-attributes */
    PyObject *typed;       /* tuple[str]: emails, phoneNumbers */
    PyObject *attr_paths;  /* tuple[str]: top-level live keys of custom attributes */
    PyObject *attr_names;  /* tuple[str]: their names in User.attributes */
    PyObject *heads;       /* tuple[(urn, subs, names)]: custom attributes in a complex one */
    PyObject *enterprise;  /* str: the enterprise extension's URN (manager) */
    PyObject *access_ext;  /* str: the access extension's URN */
    PyObject *access_subs; /* tuple[str]: its sub-attributes, in the grants' order */
} Spec;

#define UNCHANGED 1
#define MAY_DIFFER 0
#define FAILED (-1)

/* Every object below is used through a reference this code owns: comparing runs Python code
 * (__eq__, __bool__, __hash__ of a key, casefold of a str subclass, a model's __dict__), and
 * that code may mutate or free any list or dict it can reach, so nothing is used while only
 * borrowed from one of them. */

/* d[k] as a new reference, a new reference to None when absent, NULL on error. */
static inline PyObject *
get(PyObject *d, PyObject *k)
{
    PyObject *v = PyDict_GetItemWithError(d, k);
    if (v == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    return Py_NewRef(v);
}

/* d[k] as a new reference; NULL when absent (no error set) or on error. */
static inline PyObject *
field(PyObject *d, PyObject *k)
{
    return Py_XNewRef(PyDict_GetItemWithError(d, k));
}

/* have == want as Python's tuples, lists and dicts compare items (the live value on the
 * left, as in the reference): UNCHANGED, MAY_DIFFER or FAILED. */
static inline int
same(PyObject *have, PyObject *want)
{
    int r = PyObject_RichCompareBool(have, want, Py_EQ);
    return r < 0 ? FAILED : (r ? UNCHANGED : MAY_DIFFER);
}

/* not (have != want): the reference writes these comparisons with != on the values
 * themselves (no identity shortcut, and __ne__ is not always the negation of __eq__). */
static int
same_ne(PyObject *have, PyObject *want)
{
    PyObject *ne = PyObject_RichCompare(have, want, Py_NE);
    if (ne == NULL) {
        return FAILED;
    }
    int t = PyObject_IsTrue(ne);
    Py_DECREF(ne);
    return t < 0 ? FAILED : (t ? MAY_DIFFER : UNCHANGED);
}

/* Each live l[lkeys[j]] (l None: all absent) against the desired d[keys[j]]. model: d is a
 * model's fields, and a key absent from it answers MAY_DIFFER; else an absent key reads as
 * None (dict.get). typed: the two values must also be of one type (as Managed.differs
 * requires before trusting ==: True == 1, but they normalise apart). */
static int
same_each(PyObject *d, PyObject *keys, PyObject *l, PyObject *lkeys, int model, int typed)
{
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *have = l == Py_None ? Py_NewRef(Py_None) : get(l, PyTuple_GET_ITEM(lkeys, j));
        if (have == NULL) {
            return FAILED;
        }
        PyObject *want = model ? field(d, PyTuple_GET_ITEM(keys, j)) : get(d, PyTuple_GET_ITEM(keys, j));
        int r;
        if (want == NULL) {
            r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        else {
            r = typed && Py_TYPE(have) != Py_TYPE(want) ? MAY_DIFFER : same(have, want);
            Py_DECREF(want);
        }
        Py_DECREF(have);
        if (r != UNCHANGED) {
            return r;
        }
    }
    return UNCHANGED;
}

/* A model's field values (its __dict__), as a new reference; NULL with no error set when it
 * has none that is a dict. */
static PyObject *
fields_of(PyObject *model)
{
    PyObject *d = PyObject_GetAttr(model, s_dict);
    if (d == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
        }
        return NULL;
    }
    if (!PyDict_Check(d)) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* One live {value, type, primary} against the model it would be written from. */
static int
same_typed_item(PyObject *have, PyObject *item)
{
    if (!PyDict_CheckExact(have) || PyDict_GET_SIZE(have) != 3) {
        return MAY_DIFFER;
    }
    PyObject *d = fields_of(item);
    if (d == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    PyObject *keys[3] = {s_value, s_type, s_primary};
    int r = UNCHANGED;
    for (int k = 0; k < 3 && r == UNCHANGED; k++) {
        PyObject *want = field(d, keys[k]);
        PyObject *got = want == NULL ? NULL : field(have, keys[k]);
        if (got == NULL) {
            r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        else {
            r = same(got, want);
            Py_DECREF(got);
        }
        Py_XDECREF(want);
    }
    Py_DECREF(d);
    /* __eq__ may have added to or removed from the live dict meanwhile. */
    return r == UNCHANGED && PyDict_GET_SIZE(have) != 3 ? MAY_DIFFER : r;
}

/* emails / phoneNumbers: the live list holds exactly {value, type, primary} for each item,
 * in order (the reference compares the live list with the list it would write). Sizes are
 * read again for each item: __eq__ may change either list. */
static int
same_typed(PyObject *items, PyObject *live)
{
    if (!PyList_CheckExact(items) || !PyList_CheckExact(live)) {
        return MAY_DIFFER;
    }
    for (Py_ssize_t j = 0;; j++) {
        Py_ssize_t n = PyList_GET_SIZE(items);
        if (PyList_GET_SIZE(live) != n) {
            return MAY_DIFFER;
        }
        if (j >= n) {
            return UNCHANGED;
        }
        PyObject *have = Py_NewRef(PyList_GET_ITEM(live, j));
        PyObject *item = Py_NewRef(PyList_GET_ITEM(items, j));
        int r = same_typed_item(have, item);
        Py_DECREF(have);
        Py_DECREF(item);
        if (r != UNCHANGED) {
            return r;
        }
    }
}

/* The manager: the live value is {"value": <the manager's live id>}, or the placeholder
 * {"value": {"$user": manager}} when the manager has no live id yet. */
static int
same_manager(PyObject *manager, PyObject *live_ext, PyObject *ids)
{
    if (!PyDict_CheckExact(live_ext) || !PyDict_CheckExact(ids)) {
        return MAY_DIFFER; /* ids: the reference calls ids.get, which a subclass may change */
    }
    PyObject *have = get(live_ext, s_manager);
    if (have == NULL) {
        return FAILED;
    }
    PyObject *mid = NULL, *inner = NULL, *want = NULL;
    int r = FAILED;
    PyObject *folded = PyObject_CallMethodNoArgs(manager, s_casefold);
    if (folded == NULL) {
        goto done;
    }
    mid = get(ids, folded);
    Py_DECREF(folded);
    if (mid == NULL) {
        goto done;
    }
    int truthy = PyObject_IsTrue(mid);
    if (truthy < 0) {
        goto done;
    }
    if (truthy && PyDict_CheckExact(have)) {
        /* As dict_equal(have, {"value": mid}) compares: one key, its value == mid. */
        if (PyDict_GET_SIZE(have) != 1) {
            r = MAY_DIFFER;
            goto done;
        }
        PyObject *value = field(have, s_value);
        if (value == NULL) {
            r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
            goto done;
        }
        r = same(value, mid);
        Py_DECREF(value);
        goto done;
    }
    /* Rare (a placeholder, or a live value of another type): build what the reference
     * compares with, and compare as it does. */
    if (truthy) {
        inner = Py_NewRef(mid);
    }
    else {
        inner = PyDict_New();
        if (inner == NULL || PyDict_SetItem(inner, s_user_ref, manager) < 0) {
            goto done;
        }
    }
    want = PyDict_New();
    if (want == NULL || PyDict_SetItem(want, s_value, inner) < 0) {
        goto done;
    }
    r = same_ne(have, want);
done:
    Py_DECREF(have);
    Py_XDECREF(mid);
    Py_XDECREF(inner);
    Py_XDECREF(want);
    return r;
}

/* live[urn] as a new reference when it is None/absent (None) or an exact dict; NULL with no
 * error when it is something else (MAY_DIFFER), NULL with an error on failure. */
static PyObject *
extension(PyObject *live, PyObject *urn)
{
    PyObject *ext = get(live, urn);
    if (ext != NULL && ext != Py_None && !PyDict_CheckExact(ext)) {
        Py_CLEAR(ext);
    }
    return ext;
}

#define CHECK(expr)                                                                         \
    do {                                                                                   \
        int r_ = (expr);                                                                   \
        if (r_ != UNCHANGED) {                                                             \
            return r_;                                                                     \
        }                                                                                  \
    } while (0)

/* Custom attributes: at the top level (the live keys are their paths), and in each
 * extension or complex attribute. attrs: the user's attributes (an exact dict). */
static int
same_attributes(const Spec *spec, PyObject *attrs, PyObject *live)
{
    CHECK(same_each(attrs, spec->attr_names, live, spec->attr_paths, 0, 1));
    Py_ssize_t n = PyTuple_GET_SIZE(spec->heads);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *head = PyTuple_GET_ITEM(spec->heads, j);
        PyObject *ext = extension(live, PyTuple_GET_ITEM(head, 0));
        if (ext == NULL) {
            return PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        int r = same_each(attrs, PyTuple_GET_ITEM(head, 2), ext, PyTuple_GET_ITEM(head, 1), 0, 1);
        Py_DECREF(ext);
        CHECK(r);
    }
    return UNCHANGED;
}

/* The grant attributes: entitlements and roles compared with != as the reference does, then
 * the access extension's values. grants: a tuple (immutable: it holds its items). */
static int
same_grants(const Spec *spec, PyObject *grants, PyObject *live)
{
    if (!PyTuple_CheckExact(grants) || PyTuple_GET_SIZE(grants) != 3) {
        return MAY_DIFFER;
    }
    PyObject *keys[2] = {s_entitlements, s_roles};
    for (int k = 0; k < 2; k++) {
        PyObject *have = get(live, keys[k]);
        if (have == NULL) {
            return FAILED;
        }
        int r = same_ne(have, PyTuple_GET_ITEM(grants, k));
        Py_DECREF(have);
        CHECK(r);
    }
    PyObject *granted = PyTuple_GET_ITEM(grants, 2);
    Py_ssize_t m = PyTuple_GET_SIZE(spec->access_subs);
    if (!PyTuple_CheckExact(granted) || PyTuple_GET_SIZE(granted) != m) {
        return MAY_DIFFER;
    }
    PyObject *ext = extension(live, spec->access_ext);
    if (ext == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    int r = UNCHANGED;
    for (Py_ssize_t k = 0; k < m && r == UNCHANGED; k++) {
        PyObject *have = ext == Py_None ? Py_NewRef(Py_None) : get(ext, PyTuple_GET_ITEM(spec->access_subs, k));
        if (have == NULL) {
            r = FAILED;
            break;
        }
        r = same(have, PyTuple_GET_ITEM(granted, k));
        Py_DECREF(have);
    }
    Py_DECREF(ext);
    return r;
}

/* u: the user's fields, live: its live resource, grants: its QuickGrants or None; all three
 * held by the caller. */
static int
check(const Spec *spec, PyObject *u, PyObject *live, PyObject *grants, PyObject *ids)
{
    /* active: the live value (SCIM's default, true, when absent) is the desired bool. */
    PyObject *active = field(u, s_active);
    if (active == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    PyObject *live_active = PyDict_GetItemWithError(live, s_active); /* compared at once */
    int r = live_active == NULL && PyErr_Occurred() ? FAILED
            : (live_active == NULL ? Py_True : live_active) == active ? UNCHANGED
                                                                      : MAY_DIFFER;
    Py_DECREF(active);
    CHECK(r);
    CHECK(same_each(u, spec->top, live, spec->top, 1, 0));

    PyObject *name = field(u, s_name);
    if (name == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    r = UNCHANGED;
    if (name != Py_None) {
        PyObject *live_name = get(live, s_name), *parts = NULL;
        if (live_name == NULL) {
            r = FAILED;
        }
        else if (!PyDict_CheckExact(live_name)) {
            r = MAY_DIFFER;
        }
        else if ((parts = fields_of(name)) == NULL) {
            r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        else {
            r = same_each(parts, spec->name_parts, live_name, spec->name_parts, 1, 0);
        }
        Py_XDECREF(parts);
        Py_XDECREF(live_name);
    }
    Py_DECREF(name);
    CHECK(r);

    Py_ssize_t n = PyTuple_GET_SIZE(spec->typed);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *key = PyTuple_GET_ITEM(spec->typed, j);
        PyObject *items = field(u, key);
        if (items == NULL) {
            return PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        int any = PyObject_IsTrue(items);
        r = any < 0 ? FAILED : UNCHANGED;
        if (any > 0) {
            PyObject *have = get(live, key);
            r = have == NULL ? FAILED : same_typed(items, have);
            Py_XDECREF(have);
        }
        Py_DECREF(items);
        CHECK(r);
    }

    PyObject *attrs = field(u, s_attributes);
    if (attrs == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    /* Exact: the reference reads them with attributes.get, which a subclass may change. */
    r = PyDict_CheckExact(attrs) ? same_attributes(spec, attrs, live) : MAY_DIFFER;
    Py_DECREF(attrs);
    CHECK(r);

    PyObject *manager = field(u, s_manager);
    if (manager == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    r = UNCHANGED;
    if (manager != Py_None) {
        PyObject *ext = PyUnicode_Check(manager) ? get(live, spec->enterprise) : NULL;
        if (ext == NULL) {
            r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        else {
            r = same_manager(manager, ext, ids);
            Py_DECREF(ext);
        }
    }
    Py_DECREF(manager);
    CHECK(r);

    return grants == Py_None ? UNCHANGED : same_grants(spec, grants, live);
}

/* ---- warming a block ---------------------------------------------------------------------
 *
 * At 100,000 users a pass spends most of its time waiting for memory, not computing: a
 * user's objects (the model, its __dict__, nested models, lists, strings; a live resource's
 * dicts and strings) lie apart in memory, and code that follows them one user at a time
 * misses the cache at each, one miss after the other. Before a pass works on a block of
 * users, warm() walks what the block reaches breadth-first, a level at a time: every object
 * of a level is read before any of the next, so the processor has the misses of many users
 * in flight at once, and the pass then finds the block in cache. Measured on the plan
 * benchmark, this takes a third off scan.
 *
 * It only reads: no Python code runs (nothing is called but PyDict_Next and the generic
 * __dict__ getter), no reference is taken, nothing is kept. What it cannot follow by exact
 * type (str, dict, list, tuple, or an object with an instance __dict__) it stops at, and
 * past the buffer's room it stops early: warming is only ever a hint. */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p)) /* other compilers: the reads below still overlap */
#endif

#define WARM_BLOCK 32
#define WARM_ROOM 8192

/* Room for two levels of WARM_ROOM pointers, allocated at the first block (NULL before,
 * and where memory is short: then nothing is warmed). */
typedef struct {
    PyObject **room;
} Warmer;

static void
warmer_free(Warmer *w)
{
    PyMem_Free(w->room);
    w->room = NULL;
}

static volatile Py_hash_t warm_sink; /* a read the compiler must keep */

/* Warms a[0..n) and, when b is not NULL, b[0..n), depth levels deep. */
static void
warm(Warmer *w, PyObject *const *a, PyObject *const *b, Py_ssize_t n, int depth)
{
    if (w->room == NULL) {
        w->room = PyMem_New(PyObject *, 2 * WARM_ROOM);
        if (w->room == NULL) {
            return;
        }
    }
    PyObject **level = w->room, **next = w->room + WARM_ROOM;
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n && count + 2 <= WARM_ROOM; i++) {
        level[count++] = a[i];
        if (b != NULL) {
            level[count++] = b[i];
        }
    }
    Py_hash_t sink = 0;
    for (int d = 0; d < depth && count > 0; d++) {
        Py_ssize_t found = 0;
        for (Py_ssize_t j = 0; j < count; j++) {
            PyObject *v = level[j];
            PyTypeObject *t = Py_TYPE(v);
            if (t == &PyUnicode_Type) {
                sink += ((PyASCIIObject *)v)->hash;
            }
            else if (t == &PyDict_Type) {
                Py_ssize_t pos = 0;
                PyObject *key, *value;
                while (found < WARM_ROOM && PyDict_Next(v, &pos, &key, &value)) {
                    PREFETCH(value);
                    next[found++] = value;
                }
            }
            else if (t == &PyList_Type || t == &PyTuple_Type) {
                PyObject **items = t == &PyList_Type ? ((PyListObject *)v)->ob_item
                                                     : ((PyTupleObject *)v)->ob_item;
                for (Py_ssize_t k = 0; k < Py_SIZE(v) && found < WARM_ROOM; k++) {
                    PREFETCH(items[k]);
                    next[found++] = items[k];
                }
            }
            else if (t->tp_dictoffset != 0 && found < WARM_ROOM) {
                PyObject *dict = PyObject_GenericGetDict(v, NULL);
                if (dict == NULL) {
                    PyErr_Clear();
                    continue;
                }
                PREFETCH(dict);
                next[found++] = dict; /* the object holds it */
                Py_DECREF(dict);
            }
        }
        PyObject **done = level;
        level = next;
        next = done;
        count = found;
    }
    warm_sink = sink;
}

/* At the start of each block of a pass over tuples a (and b, when not NULL) at item i: warms
 * the block's items, depth levels deep. */
static inline void
warm_block(Warmer *w, PyObject *a, PyObject *b, Py_ssize_t i, int depth)
{
    if (i % WARM_BLOCK == 0) {
        Py_ssize_t left = PyTuple_GET_SIZE(a) - i;
        warm(w, &PyTuple_GET_ITEM(a, i), b == NULL ? NULL : &PyTuple_GET_ITEM(b, i),
             left < WARM_BLOCK ? left : WARM_BLOCK, depth);
    }
}

/* ---- scan ------------------------------------------------------------------------------
 *
 * users: desired User models; lives: the live resource each pairs with, or None (not
 * paired: skipped); grants: None (no rules), or per user the (entitlements, roles,
 * access-extension values) the rules give it; ids: casefolded userName -> live id (for
 * managers); spec: scimmap.QuickSpec, where each managed attribute lives. Returns the
 * indices of the paired users that may differ, in order. */

/* The spec's fields, checked for their types once per scan. */
static int
parse_spec(PyObject *obj, Spec *spec)
{
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 9) {
        PyErr_SetString(PyExc_TypeError, "spec must be a QuickSpec");
        return -1;
    }
    PyObject **f = &PyTuple_GET_ITEM(obj, 0);
    spec->top = f[0];
    spec->name_parts = f[1];
    spec->typed = f[2];
    spec->attr_paths = f[3];
    spec->attr_names = f[4];
    spec->heads = f[5];
    spec->enterprise = f[6];
    spec->access_ext = f[7];
    spec->access_subs = f[8];
    PyObject *tuples[] = {spec->top, spec->name_parts, spec->typed, spec->attr_paths,
                          spec->attr_names, spec->heads, spec->access_subs};
    for (size_t j = 0; j < sizeof tuples / sizeof *tuples; j++) {
        if (!PyTuple_Check(tuples[j])) {
            PyErr_SetString(PyExc_TypeError, "QuickSpec fields must be tuples");
            return -1;
        }
    }
    if (PyTuple_GET_SIZE(spec->attr_paths) != PyTuple_GET_SIZE(spec->attr_names)) {
        PyErr_SetString(PyExc_ValueError, "QuickSpec: attr_paths and attr_names differ in length");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(spec->heads);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *h = PyTuple_GET_ITEM(spec->heads, j);
        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(h, 1))
            || !PyTuple_Check(PyTuple_GET_ITEM(h, 2))
            || PyTuple_GET_SIZE(PyTuple_GET_ITEM(h, 1)) != PyTuple_GET_SIZE(PyTuple_GET_ITEM(h, 2))) {
            PyErr_SetString(PyExc_TypeError, "QuickSpec heads must be (urn, subs, names)");
            return -1;
        }
    }
    return 0;
}

static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "scan(users, lives, grants, ids, spec)");
        return NULL;
    }
    PyObject *ids = args[3];
    if (!PyDict_Check(ids)) {
        PyErr_SetString(PyExc_TypeError, "ids must be a dict");
        return NULL;
    }
    Spec spec;
    if (parse_spec(args[4], &spec) < 0) {
        return NULL;
    }
    /* Tuples, not PySequence_Fast: a list's item array may be freed or moved by any Python
     * code a comparison runs, and a tuple holds every item for the whole scan. */
    PyObject *users = PySequence_Tuple(args[0]);
    PyObject *lives = users ? PySequence_Tuple(args[1]) : NULL;
    PyObject *grants = NULL, *out = NULL;
    Warmer warmer = {NULL};
    if (lives == NULL) {
        goto done;
    }
    if (args[2] != Py_None) {
        grants = PySequence_Tuple(args[2]);
        if (grants == NULL) {
            goto done;
        }
    }
    Py_ssize_t n = PyTuple_GET_SIZE(users);
    if (PyTuple_GET_SIZE(lives) != n || (grants && PyTuple_GET_SIZE(grants) != n)) {
        PyErr_SetString(PyExc_ValueError, "users, lives and grants differ in length");
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        warm_block(&warmer, users, lives, i, 6);
        PyObject *live = PyTuple_GET_ITEM(lives, i);
        if (live == Py_None) {
            continue;
        }
        int r = MAY_DIFFER;
        if (PyDict_CheckExact(live)) {
            PyObject *fields = fields_of(PyTuple_GET_ITEM(users, i));
            if (fields == NULL) {
                r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
            }
            else {
                r = check(&spec, fields, live, grants ? PyTuple_GET_ITEM(grants, i) : Py_None, ids);
                Py_DECREF(fields);
            }
        }
        if (r == FAILED) {
            Py_CLEAR(out);
            goto done;
        }
        if (r == MAY_DIFFER) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(out, index) < 0) {
                Py_XDECREF(index);
                Py_CLEAR(out);
                goto done;
            }
            Py_DECREF(index);
        }
    }
done:
    warmer_free(&warmer);
    Py_XDECREF(users);
    Py_XDECREF(lives);
    Py_XDECREF(grants);
    return out;
}

/* ---- user_groups -------------------------------------------------------------------------
 *
 * Each user's groups as a frozenset of casefolded names (users with the same groups share
 * one object), and each group's members: casefolded group name -> list of names[i], in
 * user order. folded: a group name as written -> casefolded, filled in as names are met.
 * None when a user's groups are not a list of str, or a folded name met in folded is not
 * a str. */

/* One user's groups into mine (a brand new frozenset) and members. 0, 1 (cautious: answer
 * None) or -1 on error. */
static int
add_user(PyObject *groups, PyObject *name, PyObject *folded, PyObject *mine, PyObject *members)
{
    /* The size is read again for each item: a lookup in folded may run Python code. */
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(groups); j++) {
        PyObject *spelt = PyList_GET_ITEM(groups, j);
        if (!PyUnicode_CheckExact(spelt)) {
            return 1;
        }
        Py_INCREF(spelt);
        PyObject *cf = field(folded, spelt);
        if (cf == Py_None) { /* the reference folds again where folded holds None */
            Py_CLEAR(cf);
        }
        if (cf == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(spelt);
                return -1;
            }
            cf = PyObject_CallMethodNoArgs(spelt, s_casefold);
            if (cf == NULL || PyDict_SetItem(folded, spelt, cf) < 0) {
                Py_XDECREF(cf);
                Py_DECREF(spelt);
                return -1;
            }
        }
        Py_DECREF(spelt);
        if (!PyUnicode_CheckExact(cf)) {
            Py_DECREF(cf);
            return 1;
        }
        /* A group listed twice for one user (in any spelling): one membership. */
        int seen = PySet_Contains(mine, cf);
        /* A brand new frozenset may be filled with PySet_Add before it is shared. */
        if (seen < 0 || (!seen && PySet_Add(mine, cf) < 0)) {
            Py_DECREF(cf);
            return -1;
        }
        if (seen) {
            Py_DECREF(cf);
            continue;
        }
        PyObject *holders = field(members, cf);
        if (holders == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(cf);
                return -1;
            }
            holders = PyList_New(0);
            if (holders == NULL || PyDict_SetItem(members, cf, holders) < 0) {
                Py_XDECREF(holders);
                Py_DECREF(cf);
                return -1;
            }
        }
        Py_DECREF(cf);
        int failed = PyList_Append(holders, name);
        Py_DECREF(holders);
        if (failed) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
user_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "user_groups(users, names, folded: dict)");
        return NULL;
    }
    PyObject *folded = args[2];
    PyObject *users = PySequence_Tuple(args[0]);
    PyObject *names = users ? PySequence_Tuple(args[1]) : NULL;
    PyObject *shared = NULL, *members = NULL, *sets = NULL, *result = NULL;
    Warmer warmer = {NULL};
    if (names == NULL) {
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(users);
    if (PyTuple_GET_SIZE(names) != n) {
        PyErr_SetString(PyExc_ValueError, "users and names differ in length");
        goto done;
    }
    shared = PyDict_New();
    members = PyDict_New();
    sets = PyList_New(n);
    if (shared == NULL || members == NULL || sets == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        warm_block(&warmer, users, names, i, 2);
        PyObject *fields = fields_of(PyTuple_GET_ITEM(users, i));
        if (fields == NULL) {
            goto cautious;
        }
        PyObject *groups = field(fields, s_groups);
        Py_DECREF(fields);
        if (groups == NULL || !PyList_CheckExact(groups)) {
            Py_XDECREF(groups);
            goto cautious;
        }
        PyObject *mine = PyFrozenSet_New(NULL);
        int r = mine == NULL ? -1 : add_user(groups, PyTuple_GET_ITEM(names, i), folded, mine, members);
        Py_DECREF(groups);
        if (r != 0) {
            Py_XDECREF(mine);
            if (r < 0) {
                goto done;
            }
            goto cautious;
        }
        PyObject *one = PyDict_SetDefault(shared, mine, mine);
        Py_XINCREF(one);
        Py_DECREF(mine);
        if (one == NULL) {
            goto done;
        }
        PyList_SET_ITEM(sets, i, one);
    }
    result = PyTuple_Pack(2, sets, members);
    goto done;
cautious:
    if (!PyErr_Occurred()) {
        result = Py_NewRef(Py_None);
    }
done:
    warmer_free(&warmer);
    Py_XDECREF(users);
    Py_XDECREF(names);
    Py_XDECREF(shared);
    Py_XDECREF(members);
    Py_XDECREF(sets);
    return result;
}

/* ---- index_strings -----------------------------------------------------------------------
 *
 * The live resources by their one string value for key (casefolded when fold); resources
 * without a value (absent, None, "") are left out. None when a value is not a str, when
 * fold and a value is None, or when two resources (or one resource twice) share a value. */
static PyObject *
index_strings(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "index_strings(live, key: str, fold: bool)");
        return NULL;
    }
    int fold = PyObject_IsTrue(args[2]);
    if (fold < 0) {
        return NULL;
    }
    PyObject *key = args[1];
    PyObject *live = PySequence_Tuple(args[0]); /* holds each resource (see scan) */
    if (live == NULL) {
        return NULL;
    }
    PyObject *index = dict_for(PyTuple_GET_SIZE(live));
    if (index == NULL) {
        Py_DECREF(live);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(live);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyTuple_GET_ITEM(live, i);
        if (!PyDict_CheckExact(r)) {
            goto cautious;
        }
        PyObject *v = get(r, key);
        if (v == NULL) {
            goto failed;
        }
        if (v == Py_None) {
            Py_DECREF(v);
            if (fold) {
                goto cautious;
            }
            continue;
        }
        if (!PyUnicode_CheckExact(v)) {
            Py_DECREF(v);
            goto cautious;
        }
        if (fold) {
            Py_SETREF(v, PyObject_CallMethodNoArgs(v, s_casefold));
            if (v == NULL) {
                goto failed;
            }
        }
        if (PyUnicode_GET_LENGTH(v) == 0) {
            Py_DECREF(v);
            continue;
        }
        /* The reference counts entries: the same resource twice is a shared value too. */
        Py_ssize_t before = PyDict_GET_SIZE(index);
        PyObject *there = PyDict_SetDefault(index, v, r);
        Py_DECREF(v);
        if (there == NULL) {
            goto failed;
        }
        if (PyDict_GET_SIZE(index) == before) {
            goto cautious;
        }
    }
    Py_DECREF(live);
    return index;
cautious:
    Py_DECREF(live);
    Py_DECREF(index);
    Py_RETURN_NONE;
failed:
    Py_DECREF(live);
    Py_DECREF(index);
    return NULL;
}

/* ---- ids_of ------------------------------------------------------------------------------
 *
 * names[i] -> matched[i]["id"] for each paired user (matched[i] not None). None when an id
 * is not a str. */
static PyObject *
ids_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ids_of(names, matched)");
        return NULL;
    }
    PyObject *names = PySequence_Tuple(args[0]); /* hold each item (see scan) */
    PyObject *matched = names ? PySequence_Tuple(args[1]) : NULL;
    PyObject *ids = NULL;
    if (matched == NULL) {
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (PyTuple_GET_SIZE(matched) != n) {
        PyErr_SetString(PyExc_ValueError, "names and matched differ in length");
        goto done;
    }
    ids = dict_for(n);
    if (ids == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyTuple_GET_ITEM(matched, i);
        if (m == Py_None) {
            continue;
        }
        PyObject *id = PyDict_CheckExact(m) ? field(m, s_id) : NULL;
        if (id == NULL || !PyUnicode_CheckExact(id)) {
            Py_XDECREF(id);
            Py_CLEAR(ids);
            if (!PyErr_Occurred()) {
                ids = Py_NewRef(Py_None);
            }
            goto done;
        }
        int failed = PyDict_SetItem(ids, PyTuple_GET_ITEM(names, i), id);
        Py_DECREF(id);
        if (failed) {
            Py_CLEAR(ids);
            goto done;
        }
    }
done:
    Py_XDECREF(names);
    Py_XDECREF(matched);
    return ids;
}

/* ---- field_values ------------------------------------------------------------------------
 *
 * Each model's value of one field (its __dict__[name]), in order: list(map(attrgetter(name),
 * models)) for models whose fields are their __dict__, as pydantic's are. None when a model
 * has no such __dict__ entry (the caller then reads them with getattr). */
static PyObject *
field_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "field_values(models, name: str)");
        return NULL;
    }
    PyObject *models = PySequence_Tuple(args[0]);
    if (models == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(models);
    PyObject *out = PyList_New(n);
    Warmer warmer = {NULL};
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        warm_block(&warmer, models, NULL, i, 2);
        PyObject *fields = fields_of(PyTuple_GET_ITEM(models, i));
        PyObject *value = fields == NULL ? NULL : field(fields, args[1]);
        Py_XDECREF(fields);
        if (value == NULL) {
            Py_CLEAR(out);
            if (!PyErr_Occurred()) {
                out = Py_NewRef(Py_None);
            }
            break;
        }
        PyList_SET_ITEM(out, i, value);
    }
    warmer_free(&warmer);
    Py_DECREF(models);
    return out;
}

/* ---- find --------------------------------------------------------------------------------
 *
 * find(index, values) -> (found, hits) | None: found[i] = index.get(values[i]) (None finds
 * nothing), and how many found something. None when a value is neither an exact str nor
 * None, when index is not an exact dict, or when one resource is found twice (the caller
 * then pairs one object at a time). In an index of one resource per value, as index_strings
 * makes, that is when two equal values found something, as the reference says; in another,
 * two values finding one resource also answer None, which is cautious. The reference:
 * reconciler.plan.match.find_python. Which resources were found is kept by address (Seen),
 * not in a Python set: no string is hashed or compared again. */
static PyObject *
find(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find(index, values)");
        return NULL;
    }
    PyObject *index = args[0];
    if (!PyDict_CheckExact(index)) {
        Py_RETURN_NONE;
    }
    PyObject *values = PySequence_Tuple(args[1]);
    if (values == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(values), hits = 0;
    PyObject *found = PyList_New(n), *result = NULL;
    Seen seen = {NULL, 0, 0};
    if (found == NULL || seen_init(&seen, n) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyTuple_GET_ITEM(values, i); /* held by values */
        if (v == Py_None) {
            PyList_SET_ITEM(found, i, Py_NewRef(Py_None));
            continue;
        }
        if (!PyUnicode_CheckExact(v)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *r = Py_XNewRef(PyDict_GetItemWithError(index, v));
        if (r == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            PyList_SET_ITEM(found, i, Py_NewRef(Py_None));
            continue;
        }
        PyList_SET_ITEM(found, i, r);
        if (seen_add(&seen, r)) { /* a resource found twice */
            result = Py_NewRef(Py_None);
            goto done;
        }
        hits++;
    }
    result = Py_BuildValue("(On)", found, hits);
done:
    Py_XDECREF(found);
    PyMem_Free(seen.slots);
    Py_DECREF(values);
    return result;
}

/* ---- same_members ------------------------------------------------------------------------
 *
 * same_members(desired, members, ids) -> bool | None: whether a live group's members (its
 * "members" value: [{"value": id, ...}, ...]) are exactly the users desired (casefolded
 * userNames, each once) by their live ids (ids: userName -> id). None when members is not a
 * list of exact dicts each with an exact str "value", or desired not of exact strs, or ids
 * not an exact dict (the caller then compares in Python). The reference:
 * reconciler.plan.build.same_members_python.
 *
 * The ids of a group's members lie all over memory (the users of 2,000 groups); they are
 * looked up a block at a time, and each block's names and ids fetched ahead (PREFETCH). */

#define MEMBERS_BLOCK 16

static PyObject *
same_members(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "same_members(desired, members, ids)");
        return NULL;
    }
    PyObject *ids = args[2];
    if (!PyList_CheckExact(args[1]) || !PyDict_CheckExact(ids)) {
        Py_RETURN_NONE;
    }
    /* Tuples hold every item: a str's hash and == run no Python code, but a dict's items
     * are only borrowed while the set is built. */
    PyObject *desired = PySequence_Tuple(args[0]);
    PyObject *members = desired ? PySequence_Tuple(args[1]) : NULL;
    PyObject *live = members ? PySet_New(NULL) : NULL, *result = NULL;
    if (live == NULL) {
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(members);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyTuple_GET_ITEM(members, i);
        PyObject *v = PyDict_CheckExact(m) ? PyDict_GetItemWithError(m, s_value) : NULL;
        if (v == NULL || !PyUnicode_CheckExact(v)) {
            result = PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
            goto done;
        }
        if (PySet_Add(live, v) < 0) {
            goto done;
        }
    }
    Py_ssize_t k = PyTuple_GET_SIZE(desired);
    if (k != PySet_GET_SIZE(live)) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    PyObject **names = &PyTuple_GET_ITEM(desired, 0);
    for (Py_ssize_t start = 0; start < k; start += MEMBERS_BLOCK) {
        Py_ssize_t end = k - start < MEMBERS_BLOCK ? k : start + MEMBERS_BLOCK, held = 0;
        PyObject *found[MEMBERS_BLOCK];
        int verdict = 1; /* 1: all members so far, 0: not, -1: error, 2: cautious */
        for (Py_ssize_t i = start; i < end; i++) {
            PREFETCH(names[i]);
        }
        for (Py_ssize_t i = start; i < end && verdict == 1; i++) {
            if (!PyUnicode_CheckExact(names[i])) { /* read here, once it is fetched */
                verdict = 2;
                break;
            }
            PyObject *id = PyDict_GetItemWithError(ids, names[i]);
            if (id == NULL) {
                verdict = PyErr_Occurred() ? -1 : 0; /* a desired member with no live id */
            }
            else if (!PyUnicode_CheckExact(id)) {
                verdict = 2;
            }
            else {
                found[held++] = Py_NewRef(id);
                PREFETCH(id);
            }
        }
        /* Exact strs against a set of exact strs: no Python code runs. */
        for (Py_ssize_t j = 0; j < held && verdict == 1; j++) {
            int in = PySet_Contains(live, found[j]);
            verdict = in < 0 ? -1 : in;
        }
        for (Py_ssize_t j = 0; j < held; j++) {
            Py_DECREF(found[j]);
        }
        if (verdict != 1) {
            result = verdict < 0 ? NULL : Py_NewRef(verdict == 0 ? Py_False : Py_None);
            goto done;
        }
    }
    result = Py_NewRef(Py_True);
done:
    Py_XDECREF(desired);
    Py_XDECREF(members);
    Py_XDECREF(live);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(users, lives, grants, ids, spec) -> list[int]\n\n"
     "The indices of the paired users that may differ from their live accounts (see\n"
     "reconciler.plan.quick.scan)."},
    {"user_groups", (PyCFunction)(void (*)(void))user_groups, METH_FASTCALL,
     "user_groups(users, names, folded) -> (sets, members) | None\n\n"
     "See reconciler.desired.state.user_groups_python."},
    {"index_strings", (PyCFunction)(void (*)(void))index_strings, METH_FASTCALL,
     "index_strings(live, key, fold) -> dict | None\n\n"
     "See reconciler.plan.match.index_strings_python."},
    {"ids_of", (PyCFunction)(void (*)(void))ids_of, METH_FASTCALL,
     "ids_of(names, matched) -> dict | None\n\nSee reconciler.plan.build.ids_of_python."},
    {"field_values", (PyCFunction)(void (*)(void))field_values, METH_FASTCALL,
     "field_values(models, name) -> list | None\n\nSee reconciler.plan.build.field_values_python."},
    {"same_members", (PyCFunction)(void (*)(void))same_members, METH_FASTCALL,
     "same_members(desired, members, ids) -> bool | None\n\n"
     "See reconciler.plan.build.same_members_python."},
    {"find", (PyCFunction)(void (*)(void))find, METH_FASTCALL,
     "find(index, values) -> (found, hits) | None\n\nSee reconciler.plan.match.find_python."},
    {NULL, NULL, 0, NULL},
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

static int
exec_module(PyObject *module)
{
    (void)module;
    if (s_id != NULL) {
        return 0; /* executed before (the strings are process-wide): neither leak nor replace them */
    }
    if (intern(&s_dict, "__dict__") || intern(&s_active, "active") || intern(&s_name, "name")
        || intern(&s_attributes, "attributes") || intern(&s_manager, "manager")
        || intern(&s_value, "value") || intern(&s_type, "type") || intern(&s_primary, "primary")
        || intern(&s_user_ref, "$user") || intern(&s_entitlements, "entitlements")
        || intern(&s_roles, "roles") || intern(&s_casefold, "casefold")
        || intern(&s_groups, "groups") || intern(&s_id, "id")) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_mod_multiple_interpreters
    /* The interned names are static, shared by whoever imports the module. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "reconciler._speedups",
    .m_doc = "The plan core's passes over every user, in C (see the source's header).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module_def);
}
