/* mlx_einsum: numpy/MLX Einstein summation composed from other ops. Each operand first takes its
 * repeated labels' diagonals and sums the labels no one else needs; then the operands are
 * contracted pairwise from left to right, every contraction one (batched) matmul; a last
 * transpose puts the labels in the output's order. */
#include <stdlib.h>
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/ops_common.h"

/* Labels: 'A'-'Z' are 0-25, 'a'-'z' 26-51 (so label order is ASCII order, as numpy's implicit
 * output), and the dimensions covered by '...' are 52 + i, right-aligned across operands. */
#define LETTERS 52
#define NUM_LABELS (LETTERS + CORE_MAX_NDIM)

typedef struct {
  mlx_array arr;
  int labels[CORE_MAX_NDIM];
  int ndim;
} einsum_term;

/* One parsed term: its letter labels, and where '...' stood (-1 when absent). */
typedef struct {
  int letters[CORE_MAX_NDIM];
  int num_letters;
  int ellipsis_at;
} einsum_spec;

static int letter_label(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

/* Parses term [begin, end) of the subscripts. */
static int parse_term(const char* begin, const char* end, einsum_spec* spec) {
  spec->num_letters = 0;
  spec->ellipsis_at = -1;
  for (const char* c = begin; c < end; c++) {
    if (*c == '.') {
      if (end - c < 3 || c[1] != '.' || c[2] != '.')
        return util_error("einsum: '.' must be part of an ellipsis '...' in \"%.*s\"",
                          (int)(end - begin), begin);
      if (spec->ellipsis_at >= 0)
        return util_error("einsum: more than one ellipsis in \"%.*s\"", (int)(end - begin), begin);
      spec->ellipsis_at = spec->num_letters;
      c += 2;
      continue;
    }
    int label = letter_label(*c);
    if (label < 0)
      return util_error("einsum: invalid character '%c' in the subscripts (only letters, ',', "
                        "'->' and '...')", *c);
    if (spec->num_letters == CORE_MAX_NDIM)
      return util_error("einsum: more than %d labels in one term", CORE_MAX_NDIM);
    spec->letters[spec->num_letters++] = label;
  }
  return 0;
}

/* Checks an operand's ndim against its spec; `ellipsis_dims` receives how many dimensions '...'
 * covers there. */
static int check_term_ndim(const einsum_spec* spec, int ndim, int operand, int* ellipsis_dims) {
  int named = spec->num_letters;
  if (spec->ellipsis_at < 0 ? ndim != named : ndim < named)
    return util_error("einsum: operand %d has %d dimensions but its subscripts name %d%s", operand,
                      ndim, named, spec->ellipsis_at < 0 ? "" : " (plus an ellipsis)");
  *ellipsis_dims = ndim - named;
  return 0;
}

/* Fills in labels once the widest ellipsis (max_ellipsis dims) is known. */
static void assign_labels(const einsum_spec* spec, int ellipsis_dims, int max_ellipsis, int* labels) {
  int k = 0, at = spec->ellipsis_at < 0 ? spec->num_letters : spec->ellipsis_at;
  for (int i = 0; i < at; i++) labels[k++] = spec->letters[i];
  for (int i = 0; i < ellipsis_dims; i++) labels[k++] = LETTERS + max_ellipsis - ellipsis_dims + i;
  for (int i = at; i < spec->num_letters; i++) labels[k++] = spec->letters[i];
}

static int label_char(int label) { return label < 26 ? 'A' + label : 'a' + label - 26; }

/* Replaces t->arr by op's result (the old array is freed). */
static void term_replace(einsum_term* t, mlx_array next) {
  mlx_array_free(t->arr);
  t->arr = next;
}

/* Takes the diagonal of every label repeated within the term. */
static int take_diagonals(einsum_term* t, mlx_stream s) {
  for (int p = 0; p < t->ndim; p++) {
    for (int q = p + 1; q < t->ndim; q++) {
      if (t->labels[q] != t->labels[p]) continue;
      mlx_array d = mlx_array_new();
      if (mlx_diagonal(&d, t->arr, 0, p, q, s)) {
        mlx_array_free(d);
        return 1;
      }
      term_replace(t, d);
      /* diagonal removes axes p and q and appends the diagonal last. */
      int label = t->labels[p], k = 0;
      for (int i = 0; i < t->ndim; i++)
        if (i != p && i != q) t->labels[k++] = t->labels[i];
      t->labels[k++] = label;
      t->ndim = k;
      p = -1; /* start over: positions moved */
      break;
    }
  }
  return 0;
}

/* Sums the term's axes whose labels are not in `keep`. */
static int sum_unkept(einsum_term* t, const bool* keep, mlx_stream s) {
  int axes[CORE_MAX_NDIM], n = 0, k = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (keep[t->labels[i]]) t->labels[k++] = t->labels[i];
    else axes[n++] = i;
  }
  if (n == 0) return 0;
  mlx_array r = mlx_array_new();
  if (mlx_sum_axes(&r, t->arr, axes, (size_t)n, false, s)) {
    mlx_array_free(r);
    return 1;
  }
  term_replace(t, r);
  t->ndim = k;
  return 0;
}

/* Transposes the term's axes into the order of `order` (labels, all present) and reshapes to
 * `shape` (ndim dims). */
static int permute_reshape(einsum_term* t, const int* order, const int* shape, int ndim,
                           mlx_array* out, mlx_stream s) {
  int perm[CORE_MAX_NDIM];
  for (int i = 0; i < t->ndim; i++)
    for (int j = 0; j < t->ndim; j++)
      if (t->labels[j] == order[i]) perm[i] = j;
  mlx_array tr = mlx_array_new();
  int status = mlx_transpose_axes(&tr, t->arr, perm, (size_t)t->ndim, s) ||
               mlx_reshape(out, tr, shape, (size_t)ndim, s);
  mlx_array_free(tr);
  return status;
}

/* Contracts b into a: labels in both and in keep stay (batch), labels in both and not kept are
 * summed over (with matmul for floating types, multiply + sum otherwise); the result's labels
 * are batch, a's own, b's own. */
static int contract(einsum_term* a, einsum_term* b, const bool* keep, const int* size, mlx_stream s) {
  bool in_b[NUM_LABELS] = {false}, in_a[NUM_LABELS] = {false};
  for (int i = 0; i < b->ndim; i++) in_b[b->labels[i]] = true;
  for (int i = 0; i < a->ndim; i++) in_a[a->labels[i]] = true;
  int batch[CORE_MAX_NDIM], own_a[CORE_MAX_NDIM], own_b[CORE_MAX_NDIM], summed[CORE_MAX_NDIM];
  int nb = 0, na = 0, nbb = 0, nc = 0;
  for (int i = 0; i < a->ndim; i++) {
    int l = a->labels[i];
    if (!in_b[l]) own_a[na++] = l;
    else if (keep[l]) batch[nb++] = l;
    else summed[nc++] = l;
  }
  for (int i = 0; i < b->ndim; i++)
    if (!in_a[b->labels[i]]) own_b[nbb++] = b->labels[i];
  if (nb + na + nbb + 2 > CORE_MAX_NDIM)
    return util_error("einsum: an intermediate result would have more than %d dimensions",
                      CORE_MAX_NDIM);
  int64_t fa = 1, fb = 1, fc = 1;
  for (int i = 0; i < na; i++) fa *= size[own_a[i]];
  for (int i = 0; i < nbb; i++) fb *= size[own_b[i]];
  for (int i = 0; i < nc; i++) fc *= size[summed[i]];
  if (fa > INT32_MAX || fb > INT32_MAX || fc > INT32_MAX)
    return util_error("einsum: a contraction is too large");

  int order_a[CORE_MAX_NDIM], order_b[CORE_MAX_NDIM], shape_a[CORE_MAX_NDIM], shape_b[CORE_MAX_NDIM];
  int result[CORE_MAX_NDIM], labels[CORE_MAX_NDIM], nr = 0;
  for (int i = 0; i < nb; i++) {
    order_a[i] = order_b[i] = labels[nr] = batch[i];
    shape_a[i] = shape_b[i] = result[nr++] = size[batch[i]];
  }
  for (int i = 0; i < na; i++) { order_a[nb + i] = labels[nr] = own_a[i]; result[nr++] = size[own_a[i]]; }
  for (int i = 0; i < nbb; i++) { labels[nr] = own_b[i]; result[nr++] = size[own_b[i]]; }
  mlx_array ma = mlx_array_new(), mb = mlx_array_new(), prod = mlx_array_new(), r = mlx_array_new();
  int status;
  mlx_dtype dtype = core_promote(mlx_array_dtype(a->arr), mlx_array_dtype(b->arr));
  if (core_dtype_is_inexact(dtype)) {
    /* a: (batch, own_a, summed) -> (batch, FA, FC); b: (batch, summed, own_b) -> (batch, FC, FB) */
    for (int i = 0; i < nc; i++) order_a[nb + na + i] = order_b[nb + i] = summed[i];
    for (int i = 0; i < nbb; i++) order_b[nb + nc + i] = own_b[i];
    shape_a[nb] = (int)fa;
    shape_a[nb + 1] = shape_b[nb] = (int)fc;
    shape_b[nb + 1] = (int)fb;
    status = permute_reshape(a, order_a, shape_a, nb + 2, &ma, s) ||
             permute_reshape(b, order_b, shape_b, nb + 2, &mb, s) ||
             mlx_matmul(&prod, ma, mb, s) || mlx_reshape(&r, prod, result, (size_t)nr, s);
  } else {
    /* Integers (matmul takes floats only): a (batch, FA, 1, FC) * b (batch, 1, FB, FC), summed. */
    for (int i = 0; i < nbb; i++) order_b[nb + i] = own_b[i];
    for (int i = 0; i < nc; i++) order_a[nb + na + i] = order_b[nb + nbb + i] = summed[i];
    shape_a[nb] = (int)fa;
    shape_a[nb + 1] = shape_b[nb] = 1;
    shape_b[nb + 1] = (int)fb;
    shape_a[nb + 2] = shape_b[nb + 2] = (int)fc;
    int last = -1;
    status = permute_reshape(a, order_a, shape_a, nb + 3, &ma, s) ||
             permute_reshape(b, order_b, shape_b, nb + 3, &mb, s) ||
             mlx_multiply(&prod, ma, mb, s) || mlx_sum_axes(&prod, prod, &last, 1, false, s) ||
             mlx_reshape(&r, prod, result, (size_t)nr, s);
  }
  mlx_array_free(ma);
  mlx_array_free(mb);
  mlx_array_free(prod);
  if (status) {
    mlx_array_free(r);
    return 1;
  }
  term_replace(a, r);
  memcpy(a->labels, labels, sizeof(int) * (size_t)nr);
  a->ndim = nr;
  return 0;
}

/* Parsed subscripts: every operand's labels, the output's, and each label's size. */
typedef struct {
  int output[CORE_MAX_NDIM];
  int out_ndim;
  int size[NUM_LABELS];
  int count[NUM_LABELS]; /* occurrences over all input terms */
} einsum_plan;

/* Parses the output part (NULL: implicit) given the inputs' label counts. */
static int parse_output(const char* begin, const char* end, int max_ellipsis, einsum_plan* plan) {
  plan->out_ndim = 0;
  if (!begin) { /* implicit: the ellipsis, then the labels seen once, in ASCII order */
    for (int i = 0; i < max_ellipsis; i++) plan->output[plan->out_ndim++] = LETTERS + i;
    for (int l = 0; l < LETTERS; l++)
      if (plan->count[l] == 1) plan->output[plan->out_ndim++] = l;
    return 0;
  }
  einsum_spec spec;
  if (parse_term(begin, end, &spec)) return 1;
  bool seen[NUM_LABELS] = {false};
  for (int i = 0; i < spec.num_letters; i++) {
    int l = spec.letters[i];
    if (seen[l]) return util_error("einsum: output label '%c' repeated", label_char(l));
    if (!plan->count[l])
      return util_error("einsum: output label '%c' is not in any input", label_char(l));
    seen[l] = true;
  }
  int e = spec.ellipsis_at < 0 ? 0 : max_ellipsis;
  if (spec.num_letters + e > CORE_MAX_NDIM)
    return util_error("einsum: the output would have more than %d dimensions", CORE_MAX_NDIM);
  assign_labels(&spec, e, max_ellipsis, plan->output);
  plan->out_ndim = spec.num_letters + e;
  return 0;
}

/* Parses the subscripts against the operands' shapes; terms receive their labels. Named labels
 * must agree in size; ellipsis dimensions broadcast (size 1 against n). */
static int plan_einsum(const char* subscripts, einsum_term* terms, int n, einsum_plan* plan) {
  const char* arrow = strstr(subscripts, "->");
  const char* inputs_end = arrow ? arrow : subscripts + strlen(subscripts);
  if (arrow && strstr(arrow + 2, "->")) return util_error("einsum: more than one '->' in the subscripts");
  einsum_spec* specs = malloc(sizeof *specs * (size_t)n);
  int* ellipsis_dims = malloc(sizeof(int) * (size_t)n);
  int status = 1, max_ellipsis = 0, term = 0;
  if (!specs || !ellipsis_dims) {
    util_error("out of memory");
    goto cleanup;
  }
  for (const char* begin = subscripts;; term++) {
    const char* comma = memchr(begin, ',', (size_t)(inputs_end - begin));
    const char* end = comma ? comma : inputs_end;
    if (term >= n) {
      util_error("einsum: the subscripts name more operands than the %d given", n);
      goto cleanup;
    }
    if (parse_term(begin, end, &specs[term]) ||
        check_term_ndim(&specs[term], terms[term].ndim, term, &ellipsis_dims[term]))
      goto cleanup;
    if (ellipsis_dims[term] > max_ellipsis) max_ellipsis = ellipsis_dims[term];
    if (!comma) break;
    begin = comma + 1;
  }
  if (term + 1 != n) {
    util_error("einsum: the subscripts name %d operands but %d were given", term + 1, n);
    goto cleanup;
  }
  memset(plan->count, 0, sizeof plan->count);
  for (int l = 0; l < NUM_LABELS; l++) plan->size[l] = -1;
  for (int t = 0; t < n; t++) {
    assign_labels(&specs[t], ellipsis_dims[t], max_ellipsis, terms[t].labels);
    const int* shape = mlx_array_shape(terms[t].arr);
    for (int i = 0; i < terms[t].ndim; i++) {
      int l = terms[t].labels[i], d = shape[i];
      plan->count[l]++;
      if (plan->size[l] < 0 || plan->size[l] == d) plan->size[l] = d;
      else if (l >= LETTERS && (plan->size[l] == 1 || d == 1)) plan->size[l] = d > plan->size[l] ? d : plan->size[l];
      else if (l >= LETTERS) {
        util_error("einsum: ellipsis dimensions of sizes %d and %d cannot be broadcast", plan->size[l], d);
        goto cleanup;
      } else {
        util_error("einsum: label '%c' has sizes %d and %d", label_char(l), plan->size[l], d);
        goto cleanup;
      }
    }
  }
  status = parse_output(arrow ? arrow + 2 : NULL, arrow ? arrow + strlen(arrow) : NULL, max_ellipsis, plan);
cleanup:
  free(specs);
  free(ellipsis_dims);
  return status;
}

/* Broadcasts the term's size-1 ellipsis dimensions to the labels' sizes. */
static int broadcast_ellipsis(einsum_term* t, const int* size, mlx_stream s) {
  int shape[CORE_MAX_NDIM];
  bool changed = false;
  const int* have = mlx_array_shape(t->arr);
  for (int i = 0; i < t->ndim; i++) {
    shape[i] = size[t->labels[i]];
    changed |= shape[i] != have[i];
  }
  if (!changed) return 0;
  mlx_array r = mlx_array_new();
  if (mlx_broadcast_to(&r, t->arr, shape, (size_t)t->ndim, s)) {
    mlx_array_free(r);
    return 1;
  }
  term_replace(t, r);
  return 0;
}

/* Whether each label is needed after operand `from`: in the output or in a later operand. */
static void needed_after(const einsum_term* terms, int n, int from, const einsum_plan* plan, bool* keep) {
  memset(keep, 0, sizeof(bool) * NUM_LABELS);
  for (int i = 0; i < plan->out_ndim; i++) keep[plan->output[i]] = true;
  for (int t = from + 1; t < n; t++)
    for (int i = 0; i < terms[t].ndim; i++) keep[terms[t].labels[i]] = true;
}

static int run_einsum(einsum_term* terms, int n, einsum_plan* plan, mlx_array* res, mlx_stream s) {
  bool keep[NUM_LABELS];
  for (int t = 0; t < n; t++) {
    if (broadcast_ellipsis(&terms[t], plan->size, s) || take_diagonals(&terms[t], s)) return 1;
    /* Sum what neither the output nor any other operand uses. */
    memset(keep, 0, sizeof keep);
    for (int i = 0; i < plan->out_ndim; i++) keep[plan->output[i]] = true;
    for (int u = 0; u < n; u++)
      if (u != t)
        for (int i = 0; i < terms[u].ndim; i++) keep[terms[u].labels[i]] = true;
    if (sum_unkept(&terms[t], keep, s)) return 1;
  }
  for (int t = 1; t < n; t++) {
    needed_after(terms, n, t, plan, keep);
    if (contract(&terms[0], &terms[t], keep, plan->size, s)) return 1;
  }
  int perm[CORE_MAX_NDIM];
  for (int i = 0; i < plan->out_ndim; i++)
    for (int j = 0; j < terms[0].ndim; j++)
      if (terms[0].labels[j] == plan->output[i]) perm[i] = j;
  return mlx_transpose_axes(res, terms[0].arr, perm, (size_t)plan->out_ndim, s);
}

int mlx_einsum(mlx_array* res, const char* subscripts, const mlx_vector_array operands,
               const mlx_stream s) {
  if (!subscripts) return util_error("einsum: subscripts is NULL");
  size_t n = operands.ctx ? mlx_vector_array_size(operands) : 0;
  if (n == 0) return util_error("einsum: at least one operand is required");
  if (n > INT32_MAX) return util_error("einsum: too many operands");
  /* Whitespace is ignored, as numpy and MLX do. */
  size_t len = strlen(subscripts), k = 0;
  char* compact = malloc(len + 1);
  einsum_term* terms = calloc(n, sizeof *terms);
  einsum_plan* plan = malloc(sizeof *plan);
  int status = 1;
  if (!compact || !terms || !plan) {
    util_error("out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < len; i++)
    if (subscripts[i] != ' ' && subscripts[i] != '\t' && subscripts[i] != '\n') compact[k++] = subscripts[i];
  compact[k] = '\0';
  for (size_t i = 0; i < n; i++) {
    terms[i].arr = mlx_array_new();
    if (mlx_vector_array_get(&terms[i].arr, operands, i)) goto cleanup;
    if (!ops_arg(terms[i].arr, "einsum", "an operand")) goto cleanup;
    terms[i].ndim = (int)mlx_array_ndim(terms[i].arr);
  }
  status = plan_einsum(compact, terms, (int)n, plan) || run_einsum(terms, (int)n, plan, res, s);
cleanup:
  if (terms)
    for (size_t i = 0; i < n; i++) mlx_array_free(terms[i].arr);
  free(terms);
  free(plan);
  free(compact);
  return status;
}
