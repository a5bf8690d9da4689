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
 *
 * Where a Python function answers None ("take the general path"), so does its port, and
 * the port may answer None where the reference would not (never the other way round); the
 * caller then runs the general Python code. scan may call a user "may differ" where the
 * reference calls it unchanged (the plan then compares that user fully), never the other
 * way round. So wherever a value is not of the plain shape expected (an exact dict, list
 * or str), these functions take the cautious answer rather than reason about it. Values
 * are compared with Python's own ==, as the references do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *s_dict, *s_active, *s_name, *s_attributes, *s_manager, *s_value, *s_type,
    *s_primary, *s_user_ref, *s_entitlements, *s_roles, *s_casefold, *s_groups, *s_id;

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

/* d[k] (borrowed), Py_None when absent, NULL on error. */
static inline PyObject *
get(PyObject *d, PyObject *k)
{
    PyObject *v = PyDict_GetItemWithError(d, k);
    if (v == NULL && !PyErr_Occurred()) {
        return Py_None;
    }
    return v;
}

/* a == b, as Python's tuples and lists compare items: 1, 0, or -1 on error. The items are
 * held while __eq__ runs (it is Python code for some types). */
static inline int
eq(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    Py_INCREF(a);
    Py_INCREF(b);
    int r = PyObject_RichCompareBool(a, b, Py_EQ);
    Py_DECREF(a);
    Py_DECREF(b);
    return r;
}

/* Each desired value d[keys[j]] against live l[lkeys[j]] (l may be NULL: all absent). A key
 * absent from d (not a model field) answers MAY_DIFFER. */
static int
same_each(PyObject *d, PyObject *keys, PyObject *l, PyObject *lkeys)
{
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *want = PyDict_GetItemWithError(d, PyTuple_GET_ITEM(keys, j));
        if (want == NULL) {
            return PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        PyObject *have = l == NULL ? Py_None : get(l, PyTuple_GET_ITEM(lkeys, j));
        if (have == NULL) {
            return FAILED;
        }
        int r = eq(want, have);
        if (r != 1) {
            return r < 0 ? FAILED : MAY_DIFFER;
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

/* emails / phoneNumbers: the live list holds exactly {value, type, primary} for each item,
 * in order (the reference compares the live list with the list it would write). */
static int
same_typed(PyObject *items, PyObject *live)
{
    if (!PyList_Check(items) || !PyList_CheckExact(live)) {
        return MAY_DIFFER;
    }
    Py_ssize_t n = PyList_GET_SIZE(items);
    if (PyList_GET_SIZE(live) != n) {
        return MAY_DIFFER;
    }
    PyObject *keys[3] = {s_value, s_type, s_primary};
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *have = PyList_GET_ITEM(live, j);
        if (!PyDict_CheckExact(have) || PyDict_GET_SIZE(have) != 3) {
            return MAY_DIFFER;
        }
        PyObject *d = fields_of(PyList_GET_ITEM(items, j));
        if (d == NULL) {
            return PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        int r = UNCHANGED;
        for (int k = 0; k < 3 && r == UNCHANGED; k++) {
            PyObject *want = PyDict_GetItemWithError(d, keys[k]);
            PyObject *got = want == NULL ? NULL : PyDict_GetItemWithError(have, keys[k]);
            if (got == NULL) {
                r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
                break;
            }
            int e = eq(want, got);
            r = e < 0 ? FAILED : (e ? UNCHANGED : MAY_DIFFER);
        }
        Py_DECREF(d);
        if (r != UNCHANGED) {
            return r;
        }
    }
    return UNCHANGED;
}

/* The manager: the live value is {"value": <the manager's live id>}, or the placeholder
 * {"value": {"$user": manager}} when the manager has no live id yet. */
static int
same_manager(PyObject *manager, PyObject *live_ext, PyObject *ids)
{
    if (!PyDict_CheckExact(live_ext)) {
        return MAY_DIFFER;
    }
    PyObject *have = get(live_ext, s_manager);
    if (have == NULL) {
        return FAILED;
    }
    PyObject *folded = PyObject_CallMethodNoArgs(manager, s_casefold);
    if (folded == NULL) {
        return FAILED;
    }
    PyObject *mid = get(ids, folded);
    Py_DECREF(folded);
    if (mid == NULL) {
        return FAILED;
    }
    int truthy = PyObject_IsTrue(mid);
    if (truthy < 0) {
        return FAILED;
    }
    if (truthy && PyDict_CheckExact(have)) {
        if (PyDict_GET_SIZE(have) != 1) {
            return MAY_DIFFER;
        }
        PyObject *value = PyDict_GetItemWithError(have, s_value);
        if (value == NULL) {
            return PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        int r = eq(value, mid);
        return r < 0 ? FAILED : (r ? UNCHANGED : MAY_DIFFER);
    }
    /* Rare (a placeholder, or a live value of another type): build what the reference
     * compares with, and compare as it does. */
    PyObject *want = NULL, *inner = NULL;
    if (truthy) {
        inner = Py_NewRef(mid);
    }
    else {
        inner = PyDict_New();
        if (inner == NULL || PyDict_SetItem(inner, s_user_ref, manager) < 0) {
            Py_XDECREF(inner);
            return FAILED;
        }
    }
    want = PyDict_New();
    if (want == NULL || PyDict_SetItem(want, s_value, inner) < 0) {
        Py_XDECREF(want);
        Py_DECREF(inner);
        return FAILED;
    }
    Py_DECREF(inner);
    int r = eq(have, want);
    Py_DECREF(want);
    return r < 0 ? FAILED : (r ? UNCHANGED : MAY_DIFFER);
}

/* An extension or complex attribute of the live resource: the dict, NULL (absent: every
 * sub-attribute is absent), or Py_False when it is there but not an exact dict. */
static PyObject *
extension(PyObject *live, PyObject *urn, int *failed)
{
    PyObject *ext = get(live, urn);
    if (ext == NULL) {
        *failed = 1;
        return NULL;
    }
    if (ext == Py_None) {
        return NULL;
    }
    return PyDict_CheckExact(ext) ? ext : Py_False;
}

#define CHECK(expr)                                                                         \
    do {                                                                                   \
        int r_ = (expr);                                                                   \
        if (r_ != UNCHANGED) {                                                             \
            return r_;                                                                     \
        }                                                                                  \
    } while (0)

static int
check(const Spec *spec, PyObject *u, PyObject *live, PyObject *grants, PyObject *ids)
{
    /* active: the live value (SCIM's default, true, when absent) is the desired bool. */
    PyObject *active = PyDict_GetItemWithError(u, s_active);
    if (active == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    PyObject *live_active = PyDict_GetItemWithError(live, s_active);
    if (live_active == NULL) {
        if (PyErr_Occurred()) {
            return FAILED;
        }
        live_active = Py_True;
    }
    if (live_active != active) {
        return MAY_DIFFER;
    }
    CHECK(same_each(u, spec->top, live, spec->top));

    PyObject *name = PyDict_GetItemWithError(u, s_name);
    if (name == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    if (name != Py_None) {
        PyObject *live_name = get(live, s_name);
        if (live_name == NULL) {
            return FAILED;
        }
        if (!PyDict_CheckExact(live_name)) {
            return MAY_DIFFER;
        }
        PyObject *parts = fields_of(name);
        if (parts == NULL) {
            return PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        int r = same_each(parts, spec->name_parts, live_name, spec->name_parts);
        Py_DECREF(parts);
        CHECK(r);
    }

    Py_ssize_t n = PyTuple_GET_SIZE(spec->typed);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *key = PyTuple_GET_ITEM(spec->typed, j);
        PyObject *items = PyDict_GetItemWithError(u, key);
        if (items == NULL) {
            return PyErr_Occurred() ? FAILED : MAY_DIFFER;
        }
        int any = PyObject_IsTrue(items);
        if (any < 0) {
            return FAILED;
        }
        if (any) {
            PyObject *have = get(live, key);
            if (have == NULL) {
                return FAILED;
            }
            CHECK(same_typed(items, have));
        }
    }

    PyObject *attrs = PyDict_GetItemWithError(u, s_attributes);
    if (attrs == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    if (!PyDict_Check(attrs)) {
        return MAY_DIFFER;
    }
    /* Custom attributes at the top level: the live keys are their paths. */
    n = PyTuple_GET_SIZE(spec->attr_paths);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *have = get(live, PyTuple_GET_ITEM(spec->attr_paths, j));
        PyObject *want = have == NULL ? NULL : get(attrs, PyTuple_GET_ITEM(spec->attr_names, j));
        if (want == NULL) {
            return FAILED;
        }
        int r = eq(want, have);
        if (r != 1) {
            return r < 0 ? FAILED : MAY_DIFFER;
        }
    }
    /* ... and in each extension or complex attribute. */
    n = PyTuple_GET_SIZE(spec->heads);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *head = PyTuple_GET_ITEM(spec->heads, j);
        int failed = 0;
        PyObject *ext = extension(live, PyTuple_GET_ITEM(head, 0), &failed);
        if (failed) {
            return FAILED;
        }
        if (ext == Py_False) {
            return MAY_DIFFER;
        }
        PyObject *subs = PyTuple_GET_ITEM(head, 1), *names = PyTuple_GET_ITEM(head, 2);
        Py_ssize_t m = PyTuple_GET_SIZE(subs);
        for (Py_ssize_t k = 0; k < m; k++) {
            PyObject *have = ext == NULL ? Py_None : get(ext, PyTuple_GET_ITEM(subs, k));
            PyObject *want = have == NULL ? NULL : get(attrs, PyTuple_GET_ITEM(names, k));
            if (want == NULL) {
                return FAILED;
            }
            int r = eq(want, have);
            if (r != 1) {
                return r < 0 ? FAILED : MAY_DIFFER;
            }
        }
    }

    PyObject *manager = PyDict_GetItemWithError(u, s_manager);
    if (manager == NULL) {
        return PyErr_Occurred() ? FAILED : MAY_DIFFER;
    }
    if (manager != Py_None) {
        if (!PyUnicode_Check(manager)) {
            return MAY_DIFFER;
        }
        PyObject *ext = get(live, spec->enterprise);
        if (ext == NULL) {
            return FAILED;
        }
        CHECK(same_manager(manager, ext, ids));
    }

    if (grants != Py_None) {
        if (!PyTuple_CheckExact(grants) || PyTuple_GET_SIZE(grants) != 3) {
            return MAY_DIFFER;
        }
        PyObject *keys[2] = {s_entitlements, s_roles};
        for (int k = 0; k < 2; k++) {
            PyObject *have = get(live, keys[k]);
            if (have == NULL) {
                return FAILED;
            }
            int r = eq(PyTuple_GET_ITEM(grants, k), have);
            if (r != 1) {
                return r < 0 ? FAILED : MAY_DIFFER;
            }
        }
        PyObject *granted = PyTuple_GET_ITEM(grants, 2);
        Py_ssize_t m = PyTuple_GET_SIZE(spec->access_subs);
        if (!PyTuple_CheckExact(granted) || PyTuple_GET_SIZE(granted) != m) {
            return MAY_DIFFER;
        }
        int failed = 0;
        PyObject *ext = extension(live, spec->access_ext, &failed);
        if (failed) {
            return FAILED;
        }
        if (ext == Py_False) {
            return MAY_DIFFER;
        }
        for (Py_ssize_t k = 0; k < m; k++) {
            PyObject *have = ext == NULL ? Py_None : get(ext, PyTuple_GET_ITEM(spec->access_subs, k));
            if (have == NULL) {
                return FAILED;
            }
            int r = eq(PyTuple_GET_ITEM(granted, k), have);
            if (r != 1) {
                return r < 0 ? FAILED : MAY_DIFFER;
            }
        }
    }
    return UNCHANGED;
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
    PyObject *users = PySequence_Fast(args[0], "users must be a sequence");
    PyObject *lives = users ? PySequence_Fast(args[1], "lives must be a sequence") : NULL;
    PyObject *grants = NULL, *out = NULL;
    if (lives == NULL) {
        goto done;
    }
    if (args[2] != Py_None) {
        grants = PySequence_Fast(args[2], "grants must be a sequence or None");
        if (grants == NULL) {
            goto done;
        }
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(users);
    if (PySequence_Fast_GET_SIZE(lives) != n
        || (grants && PySequence_Fast_GET_SIZE(grants) != n)) {
        PyErr_SetString(PyExc_ValueError, "users, lives and grants differ in length");
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL) {
        goto done;
    }
    PyObject **u = PySequence_Fast_ITEMS(users), **l = PySequence_Fast_ITEMS(lives);
    PyObject **g = grants ? PySequence_Fast_ITEMS(grants) : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *live = l[i];
        if (live == Py_None) {
            continue;
        }
        int r = MAY_DIFFER;
        if (PyDict_CheckExact(live)) {
            PyObject *fields = fields_of(u[i]);
            if (fields == NULL) {
                r = PyErr_Occurred() ? FAILED : MAY_DIFFER;
            }
            else {
                r = check(&spec, fields, live, g ? g[i] : Py_None, ids);
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
 * None when a user's groups are not a list of str. */
static PyObject *
user_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "user_groups(users, names, folded: dict)");
        return NULL;
    }
    PyObject *folded = args[2];
    PyObject *users = PySequence_Fast(args[0], "users must be a sequence");
    PyObject *names = users ? PySequence_Fast(args[1], "names must be a sequence") : NULL;
    PyObject *shared = NULL, *members = NULL, *sets = NULL, *result = NULL;
    if (names == NULL) {
        goto done;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(users);
    if (PySequence_Fast_GET_SIZE(names) != n) {
        PyErr_SetString(PyExc_ValueError, "users and names differ in length");
        goto done;
    }
    shared = PyDict_New();
    members = PyDict_New();
    sets = PyList_New(n);
    if (shared == NULL || members == NULL || sets == NULL) {
        goto done;
    }
    PyObject **u = PySequence_Fast_ITEMS(users), **nm = PySequence_Fast_ITEMS(names);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *fields = fields_of(u[i]);
        if (fields == NULL) {
            goto cautious;
        }
        PyObject *groups = PyDict_GetItemWithError(fields, s_groups);
        Py_DECREF(fields); /* the model holds groups */
        if (groups == NULL || !PyList_CheckExact(groups)) {
            goto cautious;
        }
        PyObject *mine = PyFrozenSet_New(NULL);
        if (mine == NULL) {
            goto done;
        }
        Py_ssize_t k = PyList_GET_SIZE(groups);
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *spelt = PyList_GET_ITEM(groups, j);
            if (!PyUnicode_CheckExact(spelt)) {
                Py_DECREF(mine);
                goto cautious;
            }
            PyObject *cf = PyDict_GetItemWithError(folded, spelt);
            if (cf == NULL) {
                if (PyErr_Occurred()) {
                    Py_DECREF(mine);
                    goto done;
                }
                cf = PyObject_CallMethodNoArgs(spelt, s_casefold);
                if (cf == NULL || PyDict_SetItem(folded, spelt, cf) < 0) {
                    Py_XDECREF(cf);
                    Py_DECREF(mine);
                    goto done;
                }
                Py_DECREF(cf); /* folded holds it */
            }
            /* A brand new frozenset may be filled with PySet_Add before it is shared. */
            if (PySet_Add(mine, cf) < 0) {
                Py_DECREF(mine);
                goto done;
            }
            PyObject *holders = PyDict_GetItemWithError(members, cf);
            if (holders == NULL) {
                if (PyErr_Occurred()) {
                    Py_DECREF(mine);
                    goto done;
                }
                holders = PyList_New(0);
                if (holders == NULL || PyDict_SetItem(members, cf, holders) < 0) {
                    Py_XDECREF(holders);
                    Py_DECREF(mine);
                    goto done;
                }
                Py_DECREF(holders); /* members holds it */
            }
            /* A group listed twice for one user: one membership. */
            Py_ssize_t last = PyList_GET_SIZE(holders) - 1;
            if (last < 0 || PyList_GET_ITEM(holders, last) != nm[i]) {
                if (PyList_Append(holders, nm[i]) < 0) {
                    Py_DECREF(mine);
                    goto done;
                }
            }
        }
        PyObject *one = PyDict_SetDefault(shared, mine, mine);
        Py_DECREF(mine);
        if (one == NULL) {
            goto done;
        }
        Py_INCREF(one);
        PyList_SET_ITEM(sets, i, one);
    }
    result = PyTuple_Pack(2, sets, members);
    goto done;
cautious:
    if (!PyErr_Occurred()) {
        result = Py_NewRef(Py_None);
    }
done:
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
 * fold and a value is None, or when two resources share a value. */
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
    PyObject *live = PySequence_Fast(args[0], "live must be a sequence");
    if (live == NULL) {
        return NULL;
    }
    PyObject *index = PyDict_New();
    if (index == NULL) {
        Py_DECREF(live);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(live);
    PyObject **l = PySequence_Fast_ITEMS(live);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = l[i];
        if (!PyDict_CheckExact(r)) {
            goto cautious;
        }
        PyObject *v = PyDict_GetItemWithError(r, key);
        if (v == NULL) {
            if (PyErr_Occurred()) {
                goto failed;
            }
            v = Py_None;
        }
        if (v == Py_None) {
            if (fold) {
                goto cautious;
            }
            continue;
        }
        if (!PyUnicode_CheckExact(v)) {
            goto cautious;
        }
        if (fold) {
            v = PyObject_CallMethodNoArgs(v, s_casefold);
            if (v == NULL) {
                goto failed;
            }
        }
        else {
            Py_INCREF(v);
        }
        if (PyUnicode_GET_LENGTH(v) == 0) {
            Py_DECREF(v);
            continue;
        }
        PyObject *there = PyDict_SetDefault(index, v, r);
        Py_DECREF(v);
        if (there == NULL) {
            goto failed;
        }
        if (there != r) {
            goto cautious; /* two resources share the value */
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
    PyObject *names = PySequence_Fast(args[0], "names must be a sequence");
    PyObject *matched = names ? PySequence_Fast(args[1], "matched must be a sequence") : NULL;
    PyObject *ids = NULL;
    if (matched == NULL) {
        goto done;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(names);
    if (PySequence_Fast_GET_SIZE(matched) != n) {
        PyErr_SetString(PyExc_ValueError, "names and matched differ in length");
        goto done;
    }
    ids = PyDict_New();
    if (ids == NULL) {
        goto done;
    }
    PyObject **nm = PySequence_Fast_ITEMS(names), **m = PySequence_Fast_ITEMS(matched);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (m[i] == Py_None) {
            continue;
        }
        PyObject *id = PyDict_CheckExact(m[i]) ? PyDict_GetItemWithError(m[i], s_id) : NULL;
        if (id == NULL || !PyUnicode_CheckExact(id)) {
            Py_CLEAR(ids);
            if (!PyErr_Occurred()) {
                ids = Py_NewRef(Py_None);
            }
            goto done;
        }
        if (PyDict_SetItem(ids, nm[i], id) < 0) {
            Py_CLEAR(ids);
            goto done;
        }
    }
done:
    Py_XDECREF(names);
    Py_XDECREF(matched);
    return ids;
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
