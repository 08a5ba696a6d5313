/* The conversation object: a model without a template is in completion mode and continues the
 * text; forcing chat uses chatml; a second turn feeds only what the context lacks; partial
 * answers are kept; system, pop and clear edit the messages. Runs stories260K on the CPU. */
#include "tests/testutil.h"

#include "engine/conv.h"

typedef struct fixture {
    eng_model *m;
    eng_session *s;
} fixture;

static int setup(void **state)
{
    static fixture f;
    char err[256];
    if (eng_model_open(fixture_path("models/stories260K.gguf"), &f.m, err, sizeof err))
        return -1;
    eng_session_opts o = eng_session_defaults();
    o.backend = ENG_BACKEND_CPU;
    o.n_threads = 1;
    o.sampling.temperature = 0;
    if (eng_session_new(f.m, &o, &f.s, err, sizeof err))
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    eng_session_free(f->s);
    eng_model_close(f->m);
    return 0;
}

static int stop_after;
static bool count_tokens(void *user, int32_t token, const char *text, size_t len,
                         const eng_stats *st)
{
    (void)token, (void)text, (void)len, (void)st;
    return ++*(int *)user < stop_after;
}

static void test_completion_mode(void **state)
{
    fixture *f = *state;
    eng_conv *c;
    char err[256];
    assert_int_equal(eng_conv_new(f->m, f->s, ENG_CONV_AUTO, NULL, &c, err, sizeof err), ENG_OK);
    assert_false(eng_conv_is_chat(c));
    assert_int_equal(eng_conv_add(c, "user", "Once upon a time"), ENG_OK);
    eng_generate_opts go = { 12, NULL, 0, NULL };
    eng_stop_reason why;
    int n = 0;
    stop_after = 1000;
    assert_int_equal(eng_conv_generate(c, &go, count_tokens, &n, &why), ENG_OK);
    assert_int_equal(n, 12);
    assert_int_equal(eng_conv_count(c), 2);
    eng_chat_msg a = eng_conv_msg(c, 1);
    assert_string_equal(a.role, "assistant");
    assert_true(strlen(a.content) > 10);
    /* the next turn: the context keeps the first prompt */
    eng_stats st0, st1;
    eng_session_stats(f->s, &st0);
    assert_int_equal(eng_conv_add(c, "user", "The end."), ENG_OK);
    assert_int_equal(eng_conv_sync(c), ENG_OK);
    eng_session_stats(f->s, &st1);
    assert_true(st1.n_prompt - st0.n_prompt < 12);
    assert_true(eng_conv_pop_answer(c) == false);  /* last is the user's */
    eng_conv_clear(c);
    assert_int_equal(eng_conv_count(c), 0);
    eng_conv_free(c);
}

static void test_chat_mode_partial_answer(void **state)
{
    fixture *f = *state;
    eng_conv *c;
    char err[256];
    assert_int_equal(eng_conv_new(f->m, f->s, ENG_CONV_AUTO, "nonsense", &c, err, sizeof err),
                     ENG_ERR_ARG);
    assert_non_null(strstr(err, "nonsense"));
    assert_int_equal(eng_conv_new(f->m, f->s, ENG_CONV_CHAT, NULL, &c, err, sizeof err), ENG_OK);
    assert_true(eng_conv_is_chat(c));
    assert_int_equal(eng_conv_template(c)->family, ENG_CHAT_CHATML);
    assert_int_equal(eng_conv_set_system(c, "Be brief."), ENG_OK);
    assert_int_equal(eng_conv_add(c, "user", "Hi"), ENG_OK);
    eng_generate_opts go = { 50, NULL, 0, NULL };
    eng_stop_reason why;
    int n = 0;
    stop_after = 3;  /* the callback stops it, as Esc does */
    assert_int_equal(eng_conv_generate(c, &go, count_tokens, &n, &why), ENG_OK);
    assert_int_equal(why, ENG_STOP_CANCELLED);
    assert_int_equal(eng_conv_count(c), 3);
    assert_string_equal(eng_conv_msg(c, 0).role, "system");
    assert_true(eng_conv_pop_answer(c));
    assert_int_equal(eng_conv_count(c), 2);
    assert_int_equal(eng_conv_add(c, "system", "x"), ENG_ERR_ARG);
    eng_conv_clear(c);
    assert_int_equal(eng_conv_count(c), 1);  /* the system message stays */
    eng_conv_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_mode),
        cmocka_unit_test(test_chat_mode_partial_answer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
